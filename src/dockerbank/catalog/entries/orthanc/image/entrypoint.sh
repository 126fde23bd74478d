#!/bin/sh
# Orthanc's configuration from the settings and the secret files, then Orthanc as its own user.
set -eu
json() { sed 's/\\/\\\\/g; s/"/\\"/g' "$1"; }
mkdir -p /var/lib/orthanc/db /etc/orthanc-catalog
chown orthanc:orthanc /var/lib/orthanc/db
cat > /etc/orthanc-catalog/orthanc.json <<JSON
{
  "Name": "Orthanc (Dockerbank catalog)",
  "StorageDirectory": "/var/lib/orthanc/db",
  "IndexDirectory": "/var/lib/orthanc/db",
  "DicomAet": "${ORTHANC_AET:-ORTHANC}",
  "DicomPort": 4242,
  "HttpPort": 8042,
  "RemoteAccessAllowed": true,
  "AuthenticationEnabled": true,
  "RegisteredUsers": { "${ORTHANC_USER:-admin}": "$(json /run/secrets/orthanc_password)" },
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"],
  "PostgreSQL": {
    "EnableIndex": true,
    "EnableStorage": false,
    "Host": "index",
    "Port": 5432,
    "Database": "orthanc",
    "Username": "orthanc",
    "Password": "$(json /run/secrets/index_password)",
    "Lock": false
  }
}
JSON
chown -R orthanc:orthanc /etc/orthanc-catalog
chmod 600 /etc/orthanc-catalog/orthanc.json
exec setpriv --reuid=orthanc --regid=orthanc --init-groups Orthanc /etc/orthanc-catalog/orthanc.json
