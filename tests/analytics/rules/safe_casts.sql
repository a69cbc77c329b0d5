# Every CAST becomes TRY_CAST: a value that does not convert is NULL, never an error.
SELECT SUM(CAST(age AS DOUBLE)) FROM heart WHERE CAST(chol AS BIGINT) > 200;
SELECT SUM(TRY_CAST(age AS DOUBLE)) FROM heart WHERE TRY_CAST(chol AS BIGINT) > 200;

SELECT COUNT(*) FROM heart WHERE age::DOUBLE > 50;
SELECT COUNT(*) FROM heart WHERE TRY_CAST(age AS DOUBLE) > 50;

# TRY_CAST stays as it is.
SELECT COUNT(*) FROM heart WHERE TRY_CAST(cp AS VARCHAR) = 'asymptomatic';
SELECT COUNT(*) FROM heart WHERE TRY_CAST(cp AS VARCHAR) = 'asymptomatic';
