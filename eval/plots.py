"""PNG figures (matplotlib, Agg backend): similarity layouts and corpus maps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(text: str, width: int = 38) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder="…")


def plot_similarity(sentences: list[str], matrix: np.ndarray, coords: np.ndarray,
                    clusters: np.ndarray, path: Path, *, method: str, metric: str) -> Path:
    """Two panels: the pairwise matrix as a heatmap, and the MDS layout coloured
    by cluster with each point labelled by its (shortened) sentence."""
    from adjustText import adjust_text

    plt = pyplot()
    n = len(sentences)
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6.5),
                                      gridspec_kw={"width_ratios": [1, 1.25]})
    cmap = "viridis" if metric != "euclidean" else "viridis_r"
    image = left.imshow(matrix, cmap=cmap)
    left.set_xticks(range(n), [str(i + 1) for i in range(n)])
    left.set_yticks(range(n), [f"{i + 1}. {_short(s, 28)}" for i, s in enumerate(sentences)],
                    fontsize=8)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                value = matrix[i, j]
                left.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if value < matrix.mean() else "black")
    left.set_title(f"pairwise {metric} ({method})")
    fig.colorbar(image, ax=left, shrink=0.8, label=metric)

    colours = plt.get_cmap("tab10")
    for c in np.unique(clusters):
        mask = clusters == c
        right.scatter(coords[mask, 0], coords[mask, 1], s=90, color=colours(int(c) % 10),
                      label=f"cluster {int(c) + 1}", edgecolor="black", linewidth=0.5)
    labels = [right.text(x, y, f"{i + 1}. {_short(s)}", fontsize=8)
              for i, ((x, y), s) in enumerate(zip(coords, sentences))]
    pad_x = np.ptp(coords[:, 0]) * 0.35 + 1e-6
    pad_y = np.ptp(coords[:, 1]) * 0.15 + 1e-6
    right.set_xlim(coords[:, 0].min() - pad_x * 0.3, coords[:, 0].max() + pad_x)
    right.set_ylim(coords[:, 1].min() - pad_y, coords[:, 1].max() + pad_y)
    adjust_text(labels, ax=right, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    right.set_title(f"MDS layout of cosine distances ({method})")
    right.set_xlabel("MDS dimension 1")
    right.set_ylabel("MDS dimension 2")
    right.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_corpus_map(pca: np.ndarray, tsne: np.ndarray | None, doc_ids: list[str], path: Path,
                    *, method: str, same_doc_neighbour: float, chance: float) -> Path:
    """Chunks in 2-D (PCA and t-SNE panels), coloured by document."""
    plt = pyplot()
    panels = [("PCA", pca)] + ([("t-SNE", tsne)] if tsne is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels) + 3, 7), squeeze=False)
    docs = sorted(set(doc_ids))
    colours = plt.get_cmap("tab20")
    markers = "os^Dv<>P*X"
    index = {d: i for i, d in enumerate(docs)}
    ids = np.array(doc_ids)
    for ax, (name, coords) in zip(axes[0], panels):
        for d in docs:
            i = index[d]
            mask = ids == d
            ax.scatter(coords[mask, 0], coords[mask, 1], s=28, color=colours(i % 20),
                       marker=markers[(i // 20) % len(markers)], label=d, alpha=0.85,
                       edgecolor="black", linewidth=0.3)
        ax.set_title(f"{name} of {len(doc_ids)} chunks ({method})")
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
    fig.suptitle(f"nearest chunk from the same document: {same_doc_neighbour:.0%} "
                 f"(random: {chance:.0%})", fontsize=10)
    right_margin = 0.84 if len(docs) <= 25 else 0.76
    fig.tight_layout(rect=(0, 0, right_margin, 0.96))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(right_margin, 0.5),
               fontsize=7, ncol=1 if len(docs) <= 25 else 2, title="document",
               title_fontsize=8, frameon=False)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
