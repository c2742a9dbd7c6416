-- Run once by the MariaDB image when its volume is new (docker-compose.yml). The image
-- grants MARIADB_USER only MARIADB_DATABASE; the tests need `{{ cookiecutter.__db_name }}_test` and the
-- throwaway databases named after it (`_` and `%` are wildcards here, hence `\_`).
GRANT ALL PRIVILEGES ON `{{ cookiecutter.__db_name | replace('_', '\\_') }}\_test%`.* TO 'app'@'%';
