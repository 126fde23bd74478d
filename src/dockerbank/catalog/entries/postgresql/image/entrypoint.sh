#!/bin/sh
# First start (empty volume): initdb with the secret password, then the application's role and
# database; every start: the server in the foreground as the postgres user.
set -eu
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(cat /run/secrets/postgres_password)
    install -o postgres -m 600 /run/secrets/postgres_password /tmp/pwfile
    as_postgres initdb -U postgres --auth-local=peer --auth-host=scram-sha-256 --pwfile=/tmp/pwfile \
        --no-locale -E UTF8 -D "$PGDATA" >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log; exit 1; }
    rm -f /tmp/pwfile
    # root in the container runs the tools as postgres: local socket connections by user name
    sed -i 's/^local\(.*\)peer$/local\1trust/' "$PGDATA/pg_hba.conf"
    # other containers of the stack (and the published port) connect with the password
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    quoted=$(printf '%s' "$pw" | sed "s/'/''/g")
    if [ "$POSTGRES_USER" != postgres ]; then
        printf 'CREATE ROLE "%s" LOGIN PASSWORD '"'"'%s'"'"';\n' "$POSTGRES_USER" "$quoted" \
            | as_postgres postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    if [ "$POSTGRES_DB" != postgres ]; then
        printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$POSTGRES_DB" "$POSTGRES_USER" \
            | as_postgres postgres --single -D "$PGDATA" postgres >/dev/null
    fi
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" \
    -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql
