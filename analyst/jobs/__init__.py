"""Jobs: registration, release claims (compare-and-set with fencing tokens), accounting, expiry."""
