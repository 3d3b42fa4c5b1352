"""Certificate operations on a home that are not issuance: CRLs."""
