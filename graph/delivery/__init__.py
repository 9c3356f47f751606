"""GraphQL of delivery: Send, SendEvent, ChannelMetrics; `sendEventsIngest`; the `sendStatusChanged` stream.
"""
