SELECT sex AS sex, COUNT(*) AS n FROM heart GROUP BY 1;
SELECT sex AS sex, COUNT(*) AS n FROM heart GROUP BY sex;

SELECT FLOOR(age / 10) AS decade, COUNT(*) AS n FROM heart GROUP BY decade;
SELECT FLOOR(age / 10) AS decade, COUNT(*) AS n FROM heart GROUP BY FLOOR(age / 10);

SELECT sex AS sex, cp AS cp, COUNT(*) AS n FROM heart GROUP BY ALL;
SELECT sex AS sex, cp AS cp, COUNT(*) AS n FROM heart GROUP BY sex, cp;

# Duplicates collapse.
SELECT sex AS s, COUNT(*) AS n FROM heart GROUP BY s, sex, 1;
SELECT sex AS s, COUNT(*) AS n FROM heart GROUP BY sex;

SELECT sex AS sex, COUNT(*) AS n FROM heart GROUP BY 3;
REFUSED: GROUP BY 3: the query has 2 outputs;

SELECT sex AS sex, COUNT(*) AS n FROM heart GROUP BY ROLLUP (sex);
REFUSED: GROUP BY ROLLUP is not supported;
