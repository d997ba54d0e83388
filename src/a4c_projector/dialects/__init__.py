"""One module per database dialect (:mod:`.postgres`, :mod:`.sqlite`) behind one interface
(:mod:`.base`); where to connect (:mod:`.location`); where the PostgreSQL DDL files are
(:mod:`.sqldir`)."""
