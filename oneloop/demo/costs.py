"""Marketing spend per channel, campaign and day (`marketing/costs.csv`).

Built after the people, from the ad clicks they tracked: a platform counts every click,
the site only those whose visitor let the tag fire, so the reported clicks are always at
least the tracked ones. That keeps cost-per-lead and ROI in the demo plausible.
"""

from __future__ import annotations

from oneloop.demo import vocab
from oneloop.demo.clock import DAY_MS, day_start_ms, utc_date
from oneloop.demo.draw import shared_rng
from oneloop.demo.records import CostRow

EMAIL_COST_PER_SEND = 0.03  # CNY


def build_costs(seed: int, ad_clicks: dict[tuple[str, str], int]) -> list[CostRow]:
    """One row per campaign per day it ran; `ad_clicks` is (campaign, Beijing day) -> clicks."""
    rng = shared_rng(seed, "costs")
    rows: list[CostRow] = []
    for campaign in vocab.CAMPAIGNS:
        channel = vocab.CHANNELS[campaign.channel]
        # Clicks a day from people outside the data set: most clicks never become customers.
        baseline = (
            rng.uniform(300.0, 1500.0) if channel.code == "email" else rng.uniform(20.0, 120.0)
        )
        for ms in range(day_start_ms(campaign.start), day_start_ms(campaign.end) + 1, DAY_MS):
            day = utc_date(ms)
            tracked = ad_clicks.get((campaign.name, day), 0)
            clicks = tracked + int(tracked * rng.uniform(0.3, 1.2) + rng.uniform(0, baseline))
            impressions = int(clicks / (channel.ctr * rng.uniform(0.75, 1.3))) + rng.randint(0, 50)
            if channel.code == "email":
                cost = impressions * EMAIL_COST_PER_SEND
            else:
                cost = clicks * channel.cpc * rng.uniform(0.85, 1.15)
            rows.append(
                CostRow(channel.code, campaign.name, day, impressions, clicks, round(cost, 2))
            )
    return rows
