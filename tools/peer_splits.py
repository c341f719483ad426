"""The tables and splits the peer scripts (tools/peers_*.py) score on, the same as appraise's:
`appraise cv --folds 5 --split-seed 0` (KFold(shuffle=True, random_state=0)) for Ames and
Sacramento; for the Houses dataset `--split-seeds A,...,B` (train_test_split(test_size=0.25,
random_state=S)) over the houses of zip codes with at least 25 sales."""
import numpy as np, pandas as pd
from sklearn.model_selection import KFold, train_test_split

SHARED = "/work/shared"


def table(which):
    """(frame, target column, categorical columns, [(train rows, test rows)]) of `which`:
    ames, sacramento, or a range of Houses split seeds such as 0-9."""
    if which in ("ames", "sacramento"):
        df = pd.read_csv(f"{SHARED}/data/other-datasets/{which}.csv")
        target = "Sale_Price" if which == "ames" else "price"
        cat = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        return df, target, cat, list(KFold(5, shuffle=True, random_state=0).split(df))
    cols = ["bedrooms", "bathrooms", "area", "zipcode", "price"]
    df = pd.read_csv(f"{SHARED}/data/houses-dataset/Houses Dataset/HousesInfo.txt",
                     sep=r"\s+", header=None, names=cols)
    counts = df["zipcode"].value_counts()
    df = df[df["zipcode"].isin(counts[counts >= 25].index)].reset_index(drop=True)
    df["zipcode"] = df["zipcode"].astype(str)
    first, last = (int(s) for s in which.split("-"))
    idx = np.arange(len(df))
    splits = [train_test_split(idx, test_size=0.25, random_state=s) for s in range(first, last + 1)]
    return df, "price", ["zipcode"], splits
