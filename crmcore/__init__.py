"""What the gateway and the workers share: the contract between them, which neither side owns alone.

    settings     every CRMAGENTO_* setting
    events       the webhook event catalogue and the entity each event is about
    entityqueue  the per-entity coalescing queue on Redis (the gateway writes it, the workers drain it)
    eventlog     each event's record (status, attempts, last error)
    deadletters  what the workers gave up on, and its replay
    jobrecords   admin jobs: their kinds, records and progress
    remotes      whether Magento and Cloud Retailer are up, shared by every worker
    redis_conn   how both sides connect to Redis (URL or Sentinels)
    logs         structured JSON logging for every process

The HTTP edge (`gateway`) and the sync workers (`workers`) both import this package; `workers` never imports
`gateway`.
"""
