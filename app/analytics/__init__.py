"""Analytics: goal events, attribution by the campaign's windows, daily stats, outcomes, funnel and
lift, peers (`service`).
"""
