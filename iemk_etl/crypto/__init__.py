"""Cryptography for ЕГИСЗ: GOST R 34.11-2012 (Streebog) and GOST R 34.10-2012 signatures, their ASN.1
(certificates, keys, CMS), and RSA for non-GOST setups. One interface, several backends (see ``backend``).
"""
