# Qualifiers are checked and dropped; names take the schema's spelling.
SELECT AVG(h.Age) FROM heart AS h WHERE H.SEX = 'male';
SELECT AVG(age) FROM heart WHERE sex = 'male';

SELECT COUNT(heart.chol) FROM heart;
SELECT COUNT(chol) FROM heart;

# Output aliases may stand in GROUP BY, HAVING and ORDER BY.
SELECT FLOOR(age / 10) AS decade, COUNT(*) AS n FROM heart GROUP BY decade HAVING n > 2 ORDER BY n;
SELECT FLOOR(age / 10) AS decade, COUNT(*) AS n FROM heart GROUP BY decade HAVING n > 2 ORDER BY n;

SELECT AVG(salary) FROM heart;
REFUSED: unknown column 'salary';

SELECT AVG(x.age) FROM heart AS h;
REFUSED: unknown table 'x';

SELECT AVG(age) AS a FROM heart WHERE a > 1;
REFUSED: unknown column 'a';

SELECT SUM(n) AS n FROM heart;
REFUSED: unknown column 'n';
