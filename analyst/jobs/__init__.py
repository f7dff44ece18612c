"""Jobs: registration, release claims (compare-and-set with fencing tokens), finishing, copies, deletion, expiry."""
