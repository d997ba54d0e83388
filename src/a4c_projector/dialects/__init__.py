"""One module per database dialect (:mod:`.postgres`, :mod:`.sqlite`) behind one interface
(:mod:`.base`); where the database is (:mod:`.location`), opening a connection to it
(:mod:`.connection`); where the PostgreSQL DDL files are (:mod:`.sqldir`)."""
