"""The story the demo data tell: its constituents, the index's anchor closes, two days' shapes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta, timezone

SEED = 20250918
EXCHANGE = "XHKG"
INDEX = "HSTECH"
INDEX_NAME = "Hang Seng TECH Index (synthetic)"
WEIGHT_CAP = 0.08
BASE_DAY = date(2020, 7, 27)
BASE_LEVEL = 7000.0
LAST_HISTORY_DAY = date(2025, 9, 16)
QUIET_DAY = date(2025, 9, 17)
RALLY_DAY = date(2025, 9, 18)

HKT = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Constituent:
    """One illustrative constituent and the part it plays in the story."""

    symbol: str
    name: str
    price: float  # HKD on BASE_DAY, on the HKEX tick grid
    mcap: float  # HKD bn on BASE_DAY, before free float
    factor: float  # free-float factor
    drift: float  # log performance against the index, BASE_DAY to LAST_HISTORY_DAY
    vol: float  # daily idiosyncratic volatility (log)
    move: float  # % close to close on RALLY_DAY; rises > 0 are fitted to the index's move


CONSTITUENTS = (
    Constituent("9988.HK", "Alibaba", 245.0, 5300, 0.85, 0.10, 0.014, 8.0),
    Constituent("0700.HK", "Tencent", 530.0, 5100, 0.70, 0.05, 0.012, 2.0),
    Constituent("9888.HK", "Baidu", 116.0, 900, 0.95, 0.10, 0.016, 15.0),
    Constituent("9618.HK", "JD.com", 240.0, 750, 0.80, -0.30, 0.016, 2.6),
    Constituent("3690.HK", "Meituan", 190.0, 1100, 0.85, -0.35, 0.017, 1.2),
    Constituent("1810.HK", "Xiaomi", 13.5, 650, 0.70, 0.05, 0.018, 3.5),
    Constituent("9999.HK", "NetEase", 145.0, 520, 0.55, 0.05, 0.013, 1.5),
    Constituent("1024.HK", "Kuaishou", 115.0, 480, 0.70, -0.25, 0.020, 4.2),
    Constituent("9961.HK", "Trip.com", 230.0, 200, 0.90, 0.20, 0.015, 1.8),
    Constituent("2015.HK", "Li Auto", 100.0, 150, 0.75, 0.00, 0.024, -1.2),
    Constituent("9866.HK", "NIO", 93.0, 160, 0.85, -0.60, 0.026, -2.0),
    Constituent("9868.HK", "XPeng", 90.0, 90, 0.75, -0.20, 0.026, 2.5),
    Constituent("0285.HK", "BYD Electronic", 20.0, 45, 0.35, 0.30, 0.020, 3.0),
    Constituent("0981.HK", "SMIC", 28.0, 160, 0.60, 0.50, 0.020, 5.0),
    Constituent("0992.HK", "Lenovo", 4.5, 55, 0.70, 0.40, 0.016, 2.2),
    Constituent("9626.HK", "Bilibili", 350.0, 140, 0.80, -0.40, 0.024, 3.1),
    Constituent("1698.HK", "Tencent Music", 54.0, 95, 0.40, 0.10, 0.018, 1.0),
    Constituent("6618.HK", "JD Health", 70.0, 160, 0.30, -0.30, 0.020, 2.4),
    Constituent("0241.HK", "Alibaba Health", 22.0, 260, 0.35, -0.20, 0.020, 4.5),
    Constituent("1833.HK", "Ping An Good Doctor", 110.0, 130, 0.50, -0.50, 0.020, 1.9),
    Constituent("0268.HK", "Kingdee", 19.0, 65, 0.80, 0.00, 0.018, 3.3),
    Constituent("3888.HK", "Kingsoft", 40.0, 55, 0.75, -0.10, 0.018, 2.7),
    Constituent("2382.HK", "Sunny Optical", 125.0, 135, 0.65, -0.20, 0.018, 1.4),
    Constituent("1347.HK", "Hua Hong", 40.0, 50, 0.70, 0.40, 0.022, 4.0),
    Constituent("0522.HK", "ASMPT", 90.0, 37, 0.75, -0.10, 0.016, 0.9),
    Constituent("0780.HK", "Tongcheng", 14.0, 30, 0.70, 0.20, 0.018, 1.1),
    Constituent("9898.HK", "Weibo", 270.0, 62, 0.55, -0.50, 0.020, -0.6),
    Constituent("6060.HK", "Zhongan", 50.0, 72, 0.70, -0.30, 0.022, 2.0),
    Constituent("9660.HK", "Horizon Robotics", 4.0, 45, 0.60, 0.50, 0.026, 5.5),
    Constituent("1357.HK", "Meitu", 2.0, 10, 0.70, 0.50, 0.024, -1.5),
)
HEADLINERS = ("9888.HK", "9988.HK")  # Baidu, Alibaba: the day's top two contributors

# (session, index close, band): the index passes through each close; between two, its walk
# strays at most `band` (log) from the straight line. The anchors keep every close from
# 2021-09-18 below the March 2025 high, and every 2025 close below +40% year to date.
ANCHORS: tuple[tuple[date, float, float], ...] = (
    (date(2020, 7, 27), BASE_LEVEL, 0.0),
    (date(2020, 9, 25), 6600.0, 0.10),
    (date(2020, 11, 13), 8200.0, 0.10),
    (date(2020, 12, 31), 8450.0, 0.08),
    (date(2021, 2, 17), 10950.0, 0.08),
    (date(2021, 3, 24), 8200.0, 0.10),
    (date(2021, 4, 30), 8400.0, 0.10),
    (date(2021, 6, 30), 7900.0, 0.10),
    (date(2021, 7, 27), 6000.0, 0.06),
    (date(2021, 8, 20), 5750.0, 0.05),
    (date(2021, 9, 6), 6650.0, 0.03),
    (date(2021, 9, 17), 5900.0, 0.02),
    (date(2021, 10, 20), 5650.0, 0.03),
    (date(2021, 11, 9), 5480.0, 0.03),
    (date(2021, 11, 10), 5480.0 * 1.056, 0.0),  # the last gain beyond 2025-09-18's
    (date(2021, 11, 30), 5650.0, 0.03),
    (date(2021, 12, 31), 5670.0, 0.04),
    (date(2022, 1, 27), 4800.0, 0.06),
    (date(2022, 3, 15), 3450.0, 0.10),
    (date(2022, 3, 31), 4250.0, 0.04),
    (date(2022, 6, 30), 4900.0, 0.10),
    (date(2022, 10, 31), 3000.0, 0.12),
    (date(2022, 11, 30), 4150.0, 0.08),
    (date(2022, 12, 30), 4300.0, 0.08),
    (date(2023, 1, 27), 4850.0, 0.08),
    (date(2023, 5, 31), 3650.0, 0.12),
    (date(2023, 7, 31), 4500.0, 0.10),
    (date(2023, 10, 31), 3900.0, 0.10),
    (date(2023, 12, 29), 3500.0, 0.08),
    (date(2024, 1, 22), 3050.0, 0.06),
    (date(2024, 5, 20), 4000.0, 0.12),
    (date(2024, 9, 10), 3250.0, 0.12),
    (date(2024, 10, 8), 4900.0, 0.06),
    (date(2024, 10, 9), 4400.0, 0.0),
    (date(2024, 11, 29), 4400.0, 0.08),
    (date(2024, 12, 31), 4468.0, 0.04),
    (date(2025, 1, 13), 4250.0, 0.04),
    (date(2025, 2, 21), 5850.0, 0.03),
    (date(2025, 3, 18), 6150.0, 0.012),  # about the highest close of the four years to the rally
    (date(2025, 4, 3), 5450.0, 0.012),
    (date(2025, 4, 7), 4750.0, 0.0),
    (date(2025, 5, 14), 5450.0, 0.08),
    (date(2025, 6, 20), 5150.0, 0.08),
    (date(2025, 7, 31), 5500.0, 0.07),
    (date(2025, 8, 29), 5650.0, 0.04),
    (LAST_HISTORY_DAY, 5990.0, 0.015),
)
GAIN_CAPPED_AFTER = date(2021, 11, 10)
VOLATILITY = {2020: 0.022, 2021: 0.026, 2022: 0.03, 2023: 0.022, 2024: 0.024, 2025: 0.022}
MAX_GAIN = math.log(1.085)
MAX_LOSS = math.log(1 - 0.075)
RALLY_YTD = 1.41  # rally-day close over the last 2024 close
RALLY_GAIN = 1.0425  # rally-day close over the quiet day's

# Intraday shape of the index, (trading minute, % against the previous close); the close
# follows at minute 330. Trading minutes: 0-150 is 09:30-12:00, 150-330 is 13:00-16:00.
QUIET_SHAPE = ((0, 0.15), (45, -0.35), (110, 0.30), (150, 0.05), (190, -0.25), (270, 0.45))
RALLY_SHAPE = (
    (0, 1.3),
    (35, 2.1),
    (95, 2.7),
    (150, 2.4),
    (170, 2.9),
    (210, 3.3),
    (245, 3.8),
    (265, 4.15),
    (300, 4.45),
)
MORNING_MINUTES = 150
DAY_MINUTES = 330


class StoryError(RuntimeError):
    """The generated data no longer tells the story; the message says which part broke."""
