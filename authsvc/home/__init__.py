"""The state home: where authsvc keeps its config, PKI (kubeadm layout) and inventory.

    <home>/authsvc.yaml        configuration
    <home>/pki/ca.crt, ca.key  cluster CA (kubeadm names; front-proxy-ca, etcd/ca, sa.key ...)
    <home>/authsvc.db          SQLite inventory (unless database.url is set)
    <home>/issued/             certificates made by `certs create` / `certs sign`
    <home>/backups/<time>/     what renewals and rotations replaced

Three separate things, each in its module, and the opened home that holds one of each:

- `layout`: paths only (`HomeLayout`), plus the default home (`DEFAULT_HOME`, `HOME_ENV`);
  importing it costs nothing, so the CLI's fast path can resolve `--home`;
- `secrets`: the key passphrase and the database URL, read once from a file or the environment;
- `stores`: what is loaded from the home on demand: the database engine, the inventory, the
  token service, the CAs and the certificate issuer;
- `opened`: `Home` (settings, clock, layout, secrets, stores) and `open_home()`.

This package's `__init__` exports nothing: import from the module you need.
"""
