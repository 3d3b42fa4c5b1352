#!/usr/bin/env bash
# Installs the Debian packages the tests drive for real: openssl, kubectl's peers (slapd,
# PostgreSQL, etcd, a Samba Active Directory DC), what scripts/kube-apiserver.sh needs to build
# kube-apiserver, and the headless browser of the OIDC sign-in test (chromium + chromium-driver,
# driven by Selenium). Samba's AD DC: samba (the server), samba-ad-dc (its DC role and
# samba-tool's domain commands), samba-ad-provision (the schema and templates provisioning
# reads), winbind (required by samba-ad-dc); ~16 s to install here. Where systemd starts the
# packages' services (smbd, winbind), none serves LDAP: tests/components/samba_ad.py provisions
# and runs its own DC on 127.0.0.1:389/636.
# Run as root on Debian bookworm; as another user it only reports what is missing.
set -euo pipefail

packages=(openssl slapd ldap-utils postgresql etcd-server golang-1.19-go rsync dpkg-dev wrk ca-certificates
  samba samba-ad-dc samba-ad-provision winbind chromium chromium-driver)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
