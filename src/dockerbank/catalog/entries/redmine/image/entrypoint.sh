#!/bin/sh
# database.yml and the secret key from the settings and secret files (readable by www-data only),
# the schema migrated (and Redmine's default data loaded on the first start), then puma.
set -eu
yaml_quote() { sed 's/\\/\\\\/g; s/"/\\"/g' "$1"; }
conf=/etc/redmine/default
cat > "$conf/database.yml" <<YAML
production:
  adapter: postgresql
  host: db
  port: 5432
  database: redmine
  username: redmine
  password: "$(yaml_quote /run/secrets/db_password)"
  encoding: utf8
YAML
cp /run/secrets/redmine_secret_key "$conf/secret_key.txt"
chown root:www-data "$conf/database.yml" "$conf/secret_key.txt"
chmod 640 "$conf/database.yml" "$conf/secret_key.txt"
chown -R www-data:www-data /var/lib/redmine/default/files /var/log/redmine /var/cache/redmine /var/lib/redmine/Gemfile.lock
export X_DEBIAN_SITEID=default RAILS_ENV=production HOME=/tmp SCHEMA=/tmp/schema.rb  # migrations dump the schema: not into /usr
cd /usr/share/redmine
as_www() { setpriv --reuid=www-data --regid=www-data --init-groups "$@"; }
as_www bundle exec rake db:migrate >/tmp/migrate.log 2>&1 || { cat /tmp/migrate.log; exit 1; }
if [ ! -e /var/lib/redmine/default/files/.catalog-default-data ]; then
    as_www bundle exec rake redmine:load_default_data REDMINE_LANG="${REDMINE_LANG:-en}" >/tmp/data.log 2>&1 \
        || { cat /tmp/data.log; exit 1; }
    as_www touch /var/lib/redmine/default/files/.catalog-default-data
fi
# puma itself, not `rails server` (which makes tmp/ under the read-only /usr/share/redmine)
exec setpriv --reuid=www-data --regid=www-data --init-groups bundle exec puma --bind tcp://0.0.0.0:3000 \
    --environment production config.ru
