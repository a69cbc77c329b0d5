# Outputs computed from aggregates and group keys are fine.
SELECT FLOOR(age / 10) * 10 AS decade, COUNT(*) - SUM(disease) AS healthy FROM heart GROUP BY FLOOR(age / 10) HAVING AVG(chol) > 200 ORDER BY COUNT(*) DESC;
SELECT FLOOR(age / 10) * 10 AS decade, COUNT(*) - SUM(disease) AS healthy FROM heart GROUP BY FLOOR(age / 10) HAVING AVG(chol) > 200 ORDER BY COUNT(*) DESC;

SELECT sex AS sex FROM heart GROUP BY sex;
SELECT sex AS sex FROM heart GROUP BY sex;

SELECT age AS age, COUNT(*) AS n FROM heart GROUP BY sex;
REFUSED: output age is row-level: age is neither aggregated nor a GROUP BY key;

SELECT age AS age FROM heart;
REFUSED: without GROUP BY every output must be an aggregate;

SELECT 1 AS one FROM heart;
REFUSED: without GROUP BY every output must be an aggregate;

SELECT COUNT(*) AS n FROM heart GROUP BY sex ORDER BY age;
REFUSED: ORDER BY is row-level: age is neither aggregated nor a GROUP BY key;

# In ORDER BY an output alias shadows the column of the same name, as in DuckDB.
SELECT sex AS sex, COUNT(*) AS age FROM heart GROUP BY sex ORDER BY age;
SELECT sex AS sex, COUNT(*) AS age FROM heart GROUP BY sex ORDER BY age;

SELECT COUNT(*) AS n FROM heart GROUP BY sex HAVING MAX(age) > chol;
REFUSED: chol is neither aggregated nor a GROUP BY key;

SELECT COUNT(*) AS n FROM heart WHERE SUM(age) > 1;
REFUSED: aggregates are not allowed in WHERE;

SELECT COUNT(*) AS n FROM heart GROUP BY COUNT(*);
REFUSED: aggregates are not allowed in GROUP BY;

SELECT SUM(COUNT(*)) AS n FROM heart;
REFUSED: nested aggregate COUNT(*) is not supported;

SELECT QUANTILE_CONT(age, 1.5) AS q FROM heart;
REFUSED: the quantile must be a literal in [0, 1];
