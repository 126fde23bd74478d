#!/bin/sh
# Debian's WordPress reads /etc/wordpress/config-default.php: the database and the keys come from
# the settings and the secret files (readable by Apache only), then Apache in the foreground.
set -eu
php_quote() { sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g" "$1"; }
keys=$(php_quote /run/secrets/wordpress_keys)
cat > /etc/wordpress/config-default.php <<PHP
<?php
define('DB_NAME', 'wordpress');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', '$(php_quote /run/secrets/db_password)');
define('DB_HOST', 'db');
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
foreach (array('AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT',
               'LOGGED_IN_SALT', 'NONCE_SALT') as \$name) {
    define(\$name, hash('sha256', \$name . '$keys'));
}
PHP
chown root:www-data /etc/wordpress/config-default.php
chmod 640 /etc/wordpress/config-default.php
chown -R www-data:www-data /var/lib/wordpress/wp-content
exec apache2ctl -D FOREGROUND
