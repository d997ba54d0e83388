"""Reading the event store's notification log: opening the store (:mod:`.store`), the guarded
fetch (:mod:`.source`, :mod:`.guard`) and decoding (:mod:`.decoding`)."""
