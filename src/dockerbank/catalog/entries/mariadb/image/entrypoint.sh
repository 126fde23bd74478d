#!/bin/sh
# First start (empty volume): the system tables, then the application's database and user with
# the secret password (bootstrap mode: no server listens meanwhile); every start: the server.
set -eu
mkdir -p /var/lib/mysql /run/mysqld
chown mysql:mysql /var/lib/mysql /run/mysqld
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=socket \
        --skip-test-db >/tmp/install-db.log 2>&1 || { cat /tmp/install-db.log; exit 1; }
    pw=$(sed "s/'/''/g" /run/secrets/mariadb_password)
    mariadbd --user=mysql --datadir=/var/lib/mysql --bootstrap --skip-networking >/tmp/bootstrap.log 2>&1 <<SQL || { cat /tmp/bootstrap.log; exit 1; }
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$MARIADB_USER'@'%' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';
SQL
fi
exec mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=0.0.0.0 --socket=/run/mysqld/mysqld.sock
