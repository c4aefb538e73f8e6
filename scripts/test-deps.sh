#!/bin/sh
# Debian packages the Go tests need, installed when missing (make test runs
# this first): nginx, in front of Salon in TestBehindNginx; SimpleSAMLphp
# (with PHP's XML extension, which the package does not pull in), the SAML
# identity provider of TestSSOSAMLSimpleSAMLphp; OpenLDAP's slapd and
# ldap-utils, the directory the LDAP tests start (ldaptest, and web/tests/slapd.mjs
# for browser scenario 20).
set -eu
missing=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
[ -f /usr/share/simplesamlphp/www/saml2/idp/SSOService.php ] || missing="$missing simplesamlphp"
command -v php >/dev/null 2>&1 && php -m 2>/dev/null | grep -qx dom || missing="$missing php-xml"
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing="$missing slapd"
command -v ldapmodify >/dev/null 2>&1 || missing="$missing ldap-utils"
[ -z "$missing" ] && exit 0
echo "scripts/test-deps.sh: installing$missing"
if [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y $missing >/dev/null 2>&1 || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y $missing; }
elif command -v sudo >/dev/null 2>&1; then
	sudo apt-get update >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
else
	echo "scripts/test-deps.sh: install$missing (apt-get install -y$missing); the tests that need it skip, and fail under CI=true" >&2
fi
# Debian starts the nginx and slapd services on install; the tests run their
# own. The same for Apache, which simplesamlphp pulls in; the SAML test runs
# PHP's built-in web server.
if [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now nginx >/dev/null 2>&1 || true
	systemctl disable --now apache2 >/dev/null 2>&1 || true
	systemctl disable --now slapd >/dev/null 2>&1 || true
fi
if [ "$(id -u)" = 0 ] && [ -x /etc/init.d/slapd ]; then /etc/init.d/slapd stop >/dev/null 2>&1 || true; fi
