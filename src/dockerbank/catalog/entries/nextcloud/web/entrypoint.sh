#!/bin/sh
# Before Nextcloud is installed (no config.php yet): autoconfig.php with the database and the
# admin account from the settings and secret files; Nextcloud installs itself on the first visit.
set -eu
php_quote() { sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g" "$1"; }
cfg=/var/www/html/nextcloud/config
chown www-data:www-data "$cfg" /var/www/html/nextcloud/data
if [ ! -f "$cfg/config.php" ]; then
    cat > "$cfg/autoconfig.php" <<PHP
<?php
\$AUTOCONFIG = array(
  'dbtype' => 'mysql', 'dbname' => 'nextcloud', 'dbuser' => 'nextcloud', 'dbhost' => 'db',
  'dbpass' => '$(php_quote /run/secrets/db_password)',
  'adminlogin' => '${NEXTCLOUD_ADMIN:-admin}',
  'adminpass' => '$(php_quote /run/secrets/admin_password)',
  'directory' => '/var/www/html/nextcloud/data',
);
PHP
    chown www-data:www-data "$cfg/autoconfig.php"
    chmod 640 "$cfg/autoconfig.php"
fi
exec apache2ctl -D FOREGROUND
