SELECT sex, AVG(age), COUNT(*) AS n FROM heart GROUP BY sex;
SELECT sex AS sex, AVG(age) AS "AVG(age)", COUNT(*) AS n FROM heart GROUP BY sex;

SELECT MAX(age) - MIN(age) FROM heart;
SELECT MAX(age) - MIN(age) AS "MAX(age) - MIN(age)" FROM heart;
