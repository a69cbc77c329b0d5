SELECT SUM(age) AS s, COUNT(chol) AS n FROM heart;
SELECT SUM(LEAST(GREATEST(age, 18), 100)) AS s, COUNT(chol) AS n FROM heart;

# Nullable columns keep their NULLs.
SELECT AVG(chol * 2) AS a FROM heart WHERE chol > 0;
SELECT AVG(CASE WHEN chol IS NULL THEN NULL ELSE LEAST(GREATEST(chol, 0), 700) END * 2) AS a FROM heart WHERE chol > 0;

# Both arguments of a pair; group keys and WHERE untouched.
SELECT FLOOR(age / 10) AS d, CORR(age, oldpeak) AS c FROM heart WHERE age > 30 GROUP BY FLOOR(age / 10);
SELECT FLOOR(age / 10) AS d, CORR(LEAST(GREATEST(age, 18), 100), CASE WHEN oldpeak IS NULL THEN NULL ELSE LEAST(GREATEST(oldpeak, -5), 10) END) AS c FROM heart WHERE age > 30 GROUP BY FLOOR(age / 10);

# A categorical column inside a CASE stays as it is.
SELECT SUM(CASE WHEN sex = 'male' THEN age ELSE 0 END) AS s FROM heart;
SELECT SUM(CASE WHEN sex = 'male' THEN LEAST(GREATEST(age, 18), 100) ELSE 0 END) AS s FROM heart;
