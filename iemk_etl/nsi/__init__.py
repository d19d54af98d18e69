"""НСИ dictionaries (ФНСИ, nsi.rosminzdrav.ru): the model, the files ФНСИ exports, the ФНСИ REST API client.

Pure of the database: ``iemk_etl.store.nsi`` keeps the dictionaries, ``iemk_etl.pipeline.nsi`` loads and syncs them.
"""
