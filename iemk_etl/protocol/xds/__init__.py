"""IHE XDS.b for the federal ИЭМК, one module per transaction.

- ``common``: the ebXML namespaces, metadata (slots, classifications, external identifiers) and the
  RegistryResponse / RegistryError every transaction answers with;
- ``submit``: ITI-41 Provide and Register Document Set-b;
- ``query``: ITI-18 Registry Stored Query (FindDocuments, GetDocuments) and its DocumentEntry;
- ``retrieve``: ITI-43 Retrieve Document Set.

Import the module of the transaction you need: ``from iemk_etl.protocol.xds import submit``.
"""
