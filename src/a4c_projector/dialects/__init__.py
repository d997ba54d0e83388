"""One module per database dialect behind one interface (:mod:`.base`)."""
