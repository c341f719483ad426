"""Datasets appraise knows."""

import os

import numpy as np


def load_houses(folder, min_zip_count=25):
    """The Houses dataset (Ahmed & Moustafa 2016) as the tutorial reads it: a pandas frame of
    house, zipcode, bedrooms, bathrooms, area, price and one column of photo paths per room
    (absolute), houses of zip codes with fewer than `min_zip_count` houses left out.
    `folder` holds HousesInfo.txt."""
    import pandas as pd

    from . import _appraise

    columns = dict(_appraise.load_houses(str(folder), int(min_zip_count)))
    frame = pd.DataFrame(columns)
    for name in frame.columns:
        if name.endswith("_photo"):
            frame[name] = [os.path.join(str(folder), p) for p in frame[name]]
    return frame
