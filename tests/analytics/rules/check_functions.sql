# Allowed operators, functions and casts pass unchanged.
SELECT sex, COUNT(*), SUM(CASE WHEN chol > 240 THEN 1 ELSE 0 END), AVG(ROUND(ABS(oldpeak), 1)) FROM heart WHERE cp IN ('asymptomatic') AND age BETWEEN 40 AND 60 AND LOWER(sex) LIKE 'm%' AND CAST(age AS INT) % 2 = 0 GROUP BY sex;
SELECT sex, COUNT(*), SUM(CASE WHEN chol > 240 THEN 1 ELSE 0 END), AVG(ROUND(ABS(oldpeak), 1)) FROM heart WHERE cp IN ('asymptomatic') AND age BETWEEN 40 AND 60 AND LOWER(sex) LIKE 'm%' AND CAST(age AS INT) % 2 = 0 GROUP BY sex;

SELECT COUNT(*) FROM heart WHERE read_csv('/etc/passwd') IS NULL;
REFUSED: function READ_CSV is not allowed;

SELECT COUNT(*) FROM heart WHERE glob('/etc/*') IS NULL;
REFUSED: function GLOB is not allowed;

SELECT COUNT(*) FROM heart WHERE getenv('HOME') = 'x';
REFUSED: function GETENV is not allowed;

SELECT COUNT(*) FROM heart WHERE age > random();
REFUSED: function RAND is not allowed;

SELECT COUNT(*) FROM heart WHERE current_date > DATE '2000-01-01';
REFUSED: function CURRENT_DATE is not allowed;

SELECT COUNT(DISTINCT sex) FROM heart;
REFUSED: COUNT(DISTINCT ...) cannot be combined across providers;

SELECT COUNT(*) OVER () FROM heart;
REFUSED: WINDOW is not allowed;

SELECT COUNT(*) FILTER (WHERE age > 50) FROM heart;
REFUSED: FILTER is not allowed;

SELECT QUANTILE_DISC(age, 0.5) FROM heart;
REFUSED: function PERCENTILE_DISC is not allowed;
