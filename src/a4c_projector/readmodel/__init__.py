"""Writing the read models: table sets and their DDL (:mod:`.tables`), event handlers
(:mod:`.handlers`), batched writes (:mod:`.writer`, :mod:`.staging`), the tracking
position (:mod:`.tracking`) and dead letters (:mod:`.deadletters`). What the tables are
is declared once in :mod:`a4c_projector.schema`."""
