# A plain aggregate passes unchanged.
SELECT COUNT(*) FROM heart WHERE age > 50;
SELECT COUNT(*) FROM heart WHERE age > 50;

# Every allowed clause.
SELECT sex, AVG(age) FROM heart WHERE disease = 1 GROUP BY sex HAVING COUNT(*) > 3 ORDER BY 2 DESC LIMIT 5 OFFSET 1;
SELECT sex, AVG(age) FROM heart WHERE disease = 1 GROUP BY sex HAVING COUNT(*) > 3 ORDER BY 2 DESC LIMIT 5 OFFSET 1;

# A table alias is fine.
SELECT COUNT(*) FROM heart AS h;
SELECT COUNT(*) FROM heart AS h;

SELECT * FROM heart;
REFUSED: SELECT * would reveal rows;

SELECT COUNT(*) FROM heart, heart AS other;
REFUSED: joins are not supported;

SELECT COUNT(*) FROM heart JOIN census ON TRUE;
REFUSED: joins are not supported;

WITH t AS (SELECT age FROM heart) SELECT COUNT(*) FROM t;
REFUSED: WITH is not supported;

SELECT COUNT(*) FROM (SELECT age FROM heart) AS t;
REFUSED: subqueries are not supported;

SELECT COUNT(*) FROM heart WHERE age > (SELECT 50);
REFUSED: subqueries are not supported;

SELECT DISTINCT sex FROM heart;
REFUSED: DISTINCT is not supported;

SELECT COUNT(*) FROM heart QUALIFY TRUE;
REFUSED: QUALIFY is not supported;

SELECT COUNT(*) FROM heart UNION SELECT COUNT(*) FROM heart;
REFUSED: only SELECT queries are accepted, not UNION;

SELECT COUNT(*) FROM read_parquet('/data/other.parquet');
REFUSED: table functions and file reads are not allowed;

SELECT COUNT(*) FROM 'https://example.org/x.parquet';
REFUSED: unknown table 'https://example.org/x.parquet';

SELECT COUNT(*) FROM main.heart;
REFUSED: DB on the table is not supported;

SELECT COUNT(*) FROM census;
REFUSED: unknown table 'census';

SELECT COUNT(*) FROM heart USING SAMPLE 10;
REFUSED: SAMPLE is not supported;

SELECT 1;
REFUSED: the query must read the registered table heart;

COPY heart TO '/tmp/out.csv';
REFUSED: only SELECT queries are accepted, not COPY;

ATTACH '/tmp/other.db';
REFUSED: only SELECT queries are accepted, not ATTACH;

PRAGMA version;
REFUSED: only SELECT queries are accepted, not PRAGMA;

SET threads = 1;
REFUSED: only SELECT queries are accepted, not SET;

INSTALL httpfs;
REFUSED: only SELECT queries are accepted, not INSTALL;

LOAD httpfs;
REFUSED: only SELECT queries are accepted, not COMMAND;

CREATE TABLE t AS SELECT COUNT(*) FROM heart;
REFUSED: only SELECT queries are accepted, not CREATE;
