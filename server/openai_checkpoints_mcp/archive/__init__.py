"""The archive: an account's whole fine-tuning history in one SQLite file (`schema`), written by the ``archive``
command (`writer`) and answered from, offline, by ``--archive FILE`` (`reader`)."""
