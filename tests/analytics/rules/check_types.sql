# Like compared with like passes unchanged.
SELECT sex, COUNT(*) FROM heart WHERE age > 40 AND cp IN ('asymptomatic', 'atypical angina') AND chol BETWEEN 100 AND 300 AND LOWER(sex) LIKE 'm%' GROUP BY sex;
SELECT sex, COUNT(*) FROM heart WHERE age > 40 AND cp IN ('asymptomatic', 'atypical angina') AND chol BETWEEN 100 AND 300 AND LOWER(sex) LIKE 'm%' GROUP BY sex;

# A bounded transform of a column, and LN of a positive one.
SELECT AVG(LN(chol + 1) * 2), SUM(age * 1000 + trestbps) FROM heart;
SELECT AVG(LN(chol + 1) * 2), SUM(age * 1000 + trestbps) FROM heart;

# DuckDB would cast sex row by row to a number, and quote the row in its error.
SELECT COUNT(*) FROM heart WHERE sex = 28;
REFUSED: compares a number with a string;

SELECT COUNT(*) FROM heart WHERE age IN ('x', 28);
REFUSED: compares a number with a string;

# A string is no condition: casting 'male' to BOOLEAN fails on the row.
SELECT COUNT(*) FROM heart WHERE sex;
REFUSED: WHERE: sex is a string, not a boolean;

SELECT COUNT(*) FROM heart WHERE CAST(sex AS DOUBLE) > 1;
REFUSED: sex is not numeric;

SELECT COUNT(*) FROM heart WHERE CAST(age AS TINYINT) + 100 > 0;
REFUSED: CAST to TINYINT is not allowed;

SELECT COUNT(*) FROM heart WHERE CAST(age AS DECIMAL(38, 30)) * 1000 > 0;
REFUSED: CAST to DECIMAL(38, 30) is not allowed;

SELECT COUNT(*) FROM heart WHERE LN(chol) > 5;
REFUSED: the argument may be zero or negative;

SELECT COUNT(*) FROM heart WHERE SQRT(oldpeak) > 1;
REFUSED: the argument may be negative;

SELECT COUNT(*) FROM heart WHERE EXP(chol) > 1;
REFUSED: values beyond 1e+15 are not supported;

SELECT SUM(age * 1e300) FROM heart;
REFUSED: values beyond 1e+15 are not supported;

SELECT COUNT(*) FROM heart WHERE sex LIKE cp;
REFUSED: the pattern must be a string literal;

SELECT COUNT(*) FROM heart WHERE SUBSTRING(cp, age, 1) = 'a';
REFUSED: must be a small numeric literal;

SELECT COUNT(*) FROM heart WHERE ROUND(oldpeak, age) > 1;
REFUSED: must be a small numeric literal;

SELECT COUNT(*) FROM heart WHERE COALESCE(sex, age) = 'x';
REFUSED: mixes a number with a string;

SELECT SUM(CASE WHEN age > 50 THEN chol ELSE 'none' END) FROM heart;
REFUSED: mixes a number with a string;

SELECT COUNT(*) FROM heart WHERE LENGTH(cp) * 9223372036854775807 > 0;
REFUSED: has no bound derivable from the schema;

SELECT SUM(CAST(age AS BLOB)) FROM heart;
REFUSED: CAST to BLOB is not allowed;
