#!/bin/sh
# REDCap's database.php from the settings and the secret files (readable by Apache only), then Apache.
set -eu
php_quote() { sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g" "$1"; }
cat > /var/www/html/redcap/database.php <<PHP
<?php
global \$log_all_errors;
\$log_all_errors = FALSE;
\$hostname = 'db';
\$db       = 'redcap';
\$username = 'redcap';
\$password = '$(php_quote /run/secrets/db_password)';
\$salt     = '$(php_quote /run/secrets/redcap_salt)';
PHP
chown root:www-data /var/www/html/redcap/database.php
chmod 640 /var/www/html/redcap/database.php
chown www-data:www-data /var/www/html/redcap/edocs
exec apache2ctl -D FOREGROUND
