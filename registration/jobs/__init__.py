"""Registration jobs: a case id from the Register button to `inference.pipeline.register_case`.

``views``/``api`` → ``services`` (create, cancel, retry; the task is queued on commit) → ``tasks``
(a primary key) → ``run`` (claim, ``inputs``, register, ``outputs``) in a worker (``worker``:
identity, device, heartbeat). ``state`` holds the statuses and the one transition function;
``recovery`` re-queues jobs whose worker died; ``selectors`` read; ``urls`` routes.
"""
