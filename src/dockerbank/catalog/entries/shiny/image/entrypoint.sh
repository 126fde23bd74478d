#!/bin/sh
# A new (empty) app volume gets the example application; then Shiny serves it as user shiny.
set -eu
[ -e /srv/shiny-app/app.R ] || [ -e /srv/shiny-app/server.R ] || cp /usr/local/share/catalog-shiny/app.R /srv/shiny-app/
chown -R shiny:shiny /srv/shiny-app
export HOME=/home/shiny
exec setpriv --reuid=shiny --regid=shiny --init-groups R --no-save --no-restore --slave \
    -e "shiny::runApp('/srv/shiny-app', host = '0.0.0.0', port = 3838, launch.browser = FALSE)"
