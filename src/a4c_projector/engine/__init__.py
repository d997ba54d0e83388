"""The projector engine: one batch (:mod:`.projector`), the daemon loop that follows the
log (:mod:`.runner`), reading ahead (:mod:`.readahead`) and the replica lock (:mod:`.lock`)."""
