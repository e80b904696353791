"""The view of :func:`kmagic.explain`: an image per sample row, coloured tokens, and text.

Images (2-D or 3-D inputs per sample): the input, the gradient × input saliency, and Grad-CAM
over the input when the model has a 2-D convolution. Text models: each token coloured by its
attribution (red for the class, blue against it). Other inputs: the saliency of each feature
as bars. Every form is static (PNG or HTML) plus a readable ``text/plain``.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from kmagic.attribution import Explanation

_MAX_SAMPLES = 8
_TOP_TOKENS = 5


def _is_image(explanation: Explanation) -> bool:
    data = explanation.inputs
    return data is not None and data.dtype.kind == "f" and data.ndim in (3, 4)


def _as_image(sample: Any) -> Any:
    import numpy as np

    image = sample if sample.ndim == 2 else (sample[..., 0] if sample.shape[-1] == 1 else sample[..., :3])
    low, high = float(np.min(image)), float(np.max(image))
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def explanation_png(explanation: Explanation) -> bytes:
    """One row per sample: input, saliency, Grad-CAM overlay (images) or feature bars (vectors)."""
    import numpy as np

    from kmagic.widgets.plots import _figure, to_png

    shown = min(len(explanation.targets), _MAX_SAMPLES)
    image = _is_image(explanation)
    columns = (3 if explanation.gradcam is not None else 2) if image else 1
    fig = _figure(2.6 * columns, 2.3 * shown)
    axes = fig.subplots(shown, columns, squeeze=False)
    for i in range(shown):
        title = explanation.summary(i)
        saliency = explanation.saliency[i] if explanation.saliency is not None else None
        if image and saliency is not None:  # an image's inputs are floats: it always has a saliency
            picture = _as_image(explanation.inputs[i])
            axes[i][0].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            axes[i][0].set_title(title, fontsize=8)
            heat = np.abs(saliency).sum(axis=-1) if saliency.ndim == 3 else np.abs(saliency)
            axes[i][1].imshow(heat, cmap="inferno")
            axes[i][1].set_title("gradient × input", fontsize=8)
            if explanation.gradcam is not None:
                axes[i][2].imshow(picture, cmap="gray" if picture.ndim == 2 else None)
                axes[i][2].imshow(explanation.gradcam[i], cmap="jet", alpha=0.45)
                axes[i][2].set_title(f"Grad-CAM ({explanation.gradcam_layer})", fontsize=8)
            for ax in axes[i]:
                ax.set_xticks([])
                ax.set_yticks([])
        elif saliency is not None:
            values = saliency.reshape(-1)
            axes[i][0].bar(range(len(values)), values, color=["#c62828" if v > 0 else "#1565c0" for v in values])
            axes[i][0].set_title(f"{title}: gradient × input per feature", fontsize=8)
        else:
            axes[i][0].set_visible(False)
    return to_png(fig)


def _token_html(tokens: list[str], scores: list[float]) -> str:
    peak = max((abs(s) for s in scores), default=0.0) or 1.0
    spans = []
    for token, score in zip(tokens, scores, strict=False):
        alpha = min(1.0, abs(score) / peak)
        colour = f"rgba(198,40,40,{alpha:.2f})" if score > 0 else f"rgba(21,101,192,{alpha:.2f})"
        spans.append(f'<span title="{score:.3g}" style="background:{colour};padding:0 2px;margin:1px;'
                     f'border-radius:2px">{escape(token)}</span>')
    return " ".join(spans)


class ExplainView:
    """Displays an :class:`Explanation` (PNG or coloured tokens, and text)."""

    def __init__(self, explanation: Explanation) -> None:
        self.explanation = explanation

    def to_text(self) -> str:
        """Per sample: the class explained and where the attribution is (top tokens, peak)."""
        ex = self.explanation
        lines = []
        for i in range(min(len(ex.targets), _MAX_SAMPLES)):
            line = ex.summary(i)
            if ex.tokens:
                ranked = sorted(zip(ex.token_scores[i], ex.tokens[i], strict=False), reverse=True)[:_TOP_TOKENS]
                line += "; tokens for it: " + ", ".join(f"{tok} ({score:+.3g})" for score, tok in ranked)
            elif ex.gradcam is not None:
                import numpy as np

                row, col = np.unravel_index(int(ex.gradcam[i].argmax()), ex.gradcam[i].shape)
                line += f"; Grad-CAM ({ex.gradcam_layer}) peaks at row {row}, column {col}"
            lines.append(line)
        if len(ex.targets) > _MAX_SAMPLES:
            lines.append(f"... {len(ex.targets) - _MAX_SAMPLES} more sample(s)")
        return "\n".join(lines)

    def to_html(self) -> str:
        ex = self.explanation
        if ex.tokens:
            rows = "".join(f"<div style='margin:4px 0'><b>{escape(ex.summary(i))}</b><br>"
                           f"{_token_html(ex.tokens[i], ex.token_scores[i])}</div>"
                           for i in range(min(len(ex.targets), _MAX_SAMPLES)))
            return f'<div class="kmagic-explain">{rows}</div>'
        data = base64.b64encode(explanation_png(ex)).decode()
        return f'<img class="kmagic-explain" src="data:image/png;base64,{data}">'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.to_text(), "text/html": self.to_html()}
        if not self.explanation.tokens:
            bundle["image/png"] = explanation_png(self.explanation)
        return bundle

    def __repr__(self) -> str:
        return self.to_text()
