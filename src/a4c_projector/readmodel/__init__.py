"""Writing the read models: the schema (:mod:`.schema`), table sets and DDL (:mod:`.tables`,
:mod:`.sqldir`), event handlers (:mod:`.handlers`), batched writes (:mod:`.writer`,
:mod:`.staging`), the tracking position (:mod:`.tracking`) and dead letters
(:mod:`.deadletters`)."""
