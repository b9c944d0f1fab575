"""Identity and access: the roles file (``infra/access/roles.yaml``), the directory, and what each tool makes of
them. See docs/security.md."""
