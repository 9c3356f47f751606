"""GraphQL of campaigns: the Campaign object (the API's aggregate: its fields reach every domain's
figures, so this package sits above the others), its inputs; `campaigns`, `campaign`, and the
campaign mutations (create, update, launch, pause, resume, complete, cancel, clone, audienceSet).
"""
