"""Configuration drift: the home's certificates compared with the settings that shape them.

A setting that shapes a certificate (SANs, the node name in a subject, a lifetime, a key type)
can change after the certificate was made: `server.serving_sans`, `cluster.*`,
`pki.key_type`, `pki.server_ttl` ... Changing the file does not change the certificate. This
package says what each managed certificate should be (`expected`), finds where the files differ
(`detect`), and builds the certificate that matches (`reissue`):

- `authsvc pki check` reports every drift;
- `authsvc certs renew NAME|all` and `authsvc rotate` reissue a drifted certificate to match
  (a new key when the key type changed, else the same key);
- `authsvc serve` warns at start.

Exports nothing: import from the module you need.
"""
