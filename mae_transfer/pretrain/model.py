"""The masked autoencoder of He et al., "Masked Autoencoders Are Scalable Vision Learners" (2021).

:class:`MaskedAutoencoderViT` is the project's :class:`~mae_transfer.models.MAEViT` encoder
(fused attention) plus the MAE decoder, with the parameter names of the official
``models_mae.py``, so its ``state_dict()`` is an official checkpoint's ``model`` entry:

- encoder: ``patch_embed.proj.*``, ``cls_token``, ``pos_embed`` (fixed sin-cos, not trained),
  ``blocks.{i}.*``, ``norm.*``;
- decoder: ``decoder_embed.*``, ``mask_token``, ``decoder_pos_embed`` (fixed sin-cos, 1 + L,
  not trained), ``decoder_blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``,
  ``decoder_norm.*``, ``decoder_pred.*``.

Forward pass: patch embedding + pos_embed (without its cls slot), per-sample random masking,
cls token + pos_embed[:, :1] prepended, encoder blocks and final norm on the visible tokens only;
then ``decoder_embed``, mask tokens appended and the sequence unshuffled, ``decoder_pos_embed``
added, decoder blocks, ``decoder_norm``, ``decoder_pred`` and the cls token dropped. Initialisation
as the official ``initialize_weights``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, NamedTuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mae_transfer.models.archs import ARCHS
from mae_transfer.models.pos_embed import sincos_2d_pos_embed
from mae_transfer.models.vit import Block, MAEViT
from mae_transfer.pretrain.loss import masked_patch_loss, reconstruction_target
from mae_transfer.pretrain.masking import RandomMask, check_mask_ratio, gather_tokens, random_masking
from mae_transfer.pretrain.patches import patchify


@dataclass(frozen=True)
class DecoderConfig:
    """The MAE decoder's shape (official default: 512-d, 8 blocks, 16 heads, MLP ratio 4).

    Attributes:
        embed_dim: decoder width.
        depth: decoder blocks.
        num_heads: attention heads per decoder block.
        mlp_ratio: MLP hidden width / embed_dim.
    """

    embed_dim: int = 512
    depth: int = 8
    num_heads: int = 16
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        for name in ("embed_dim", "depth", "num_heads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"decoder.{name}: expected a positive int, got {value!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"decoder.embed_dim={self.embed_dim} is not divisible by decoder.num_heads={self.num_heads}"
            )
        if self.embed_dim % 4:
            raise ValueError(f"decoder.embed_dim={self.embed_dim}: the 2-D sin-cos table needs a multiple of 4")

    @classmethod
    def parse(cls, value: DecoderConfig | Mapping[str, Any] | None) -> DecoderConfig:
        """From a DecoderConfig, a dict of its fields, or None (the default)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"decoder: expected a dict of {list(cls.__dataclass_fields__)}, got {value!r}")
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"decoder: unknown key(s) {unknown}; expected {list(cls.__dataclass_fields__)}")
        return cls(**value)


class MAEOutput(NamedTuple):
    """What :meth:`MaskedAutoencoderViT.forward` returns (the official ``loss, pred, mask``)."""

    loss: torch.Tensor
    pred: torch.Tensor
    mask: torch.Tensor


class MaskedAutoencoderViT(MAEViT):
    """MAE pre-training model: the MAEViT encoder on visible patches plus a light decoder.

    Args:
        decoder: the decoder's shape (:class:`DecoderConfig` or its fields as a dict).
        mask_ratio: fraction of patches removed per image (0.75 in the paper); must leave at
            least one visible patch and remove at least one.
        norm_pix_loss: regress per-patch normalised pixels (the released checkpoints' target).
        **encoder: :class:`MAEViT` keywords (``img_size``, ``patch_size``, ``embed_dim``,
            ``depth``, ``num_heads``...). Window attention and relative position bias are
            transfer options and are refused here.

    Raises:
        ValueError: an image size not divisible by the patch size, a mask ratio that leaves no
            visible patch or masks none, or a transfer-only encoder option.
    """

    def __init__(
        self,
        decoder: DecoderConfig | Mapping[str, Any] | None = None,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = False,
        **encoder: Any,
    ) -> None:
        for option in ("window", "rel_pos_bias"):
            if encoder.get(option):
                raise ValueError(f"{option}: a transfer option; MAE pre-training runs the plain ViT encoder")
        img_size = encoder.get("img_size", 224)
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        patch_size = encoder.get("patch_size", 16)
        if img_size[0] % patch_size or img_size[1] % patch_size:
            raise ValueError(
                f"img_size={img_size[0] if img_size[0] == img_size[1] else img_size} is not divisible by "
                f"patch_size={patch_size}"
            )
        super().__init__(**encoder)
        self.decoder_config = DecoderConfig.parse(decoder)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.mask_ratio = check_mask_ratio(mask_ratio, self.num_patches)
        self.norm_pix_loss = bool(norm_pix_loss)
        self.in_chans = self.patch_embed.proj.in_channels
        self.encoder_options = dict(encoder)

        dec = self.decoder_config
        self.decoder_embed = nn.Linear(self.embed_dim, dec.embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec.embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            sincos_2d_pos_embed(dec.embed_dim, self.grid_size, cls_token=True), requires_grad=False
        )
        self.decoder_blocks = nn.ModuleList(
            Block(dec.embed_dim, dec.num_heads, dec.mlp_ratio, qkv_bias=True) for _ in range(dec.depth)
        )
        self.decoder_norm = nn.LayerNorm(dec.embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dec.embed_dim, self.patch_size * self.patch_size * self.in_chans)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """The official initialisation (``models_mae.initialize_weights``).

        Fixed sin-cos position tables (not trained); patch embedding xavier_uniform on its
        (C, p*p*3) view; ``cls_token`` and ``mask_token`` normal(std 0.02); every Linear
        xavier_uniform with zero bias; every LayerNorm weight 1, bias 0.
        """
        with torch.no_grad():
            self.pos_embed.copy_(sincos_2d_pos_embed(self.embed_dim, self.grid_size, cls_token=True))
            self.decoder_pos_embed.copy_(
                sincos_2d_pos_embed(self.decoder_config.embed_dim, self.grid_size, cls_token=True)
            )
        self.pos_embed.requires_grad_(False)
        self.decoder_pos_embed.requires_grad_(False)
        weight = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def no_weight_decay(self) -> set[str]:
        """The fixed position tables (not trained).

        The official pre-training decays ``cls_token`` and ``mask_token``: ``main_pretrain.py``
        calls timm 0.3.2's ``add_weight_decay`` without a skip list, which exempts only 1-D
        parameters and biases.
        """
        return {"pos_embed", "decoder_pos_embed"}

    def _blocks(self, blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, self.grid_size, use_reentrant=False)
            else:
                x = block(x, self.grid_size)
        return x

    def _check_input(self, images: torch.Tensor) -> None:
        expected = (self.grid_size[0] * self.patch_size, self.grid_size[1] * self.patch_size)
        if images.dim() != 4 or tuple(images.shape[-2:]) != expected or images.shape[1] != self.in_chans:
            raise ValueError(
                f"expected images of shape (N, {self.in_chans}, {expected[0]}, {expected[1]}) (the model's img_size; "
                f"the decoder's position table is fixed for it), got {tuple(images.shape)}"
            )

    def forward_encoder(
        self, images: torch.Tensor, mask_ratio: float | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, RandomMask]:
        """Encode the visible patches: (N, 1 + K, C) normed tokens (cls first, then shuffle order) and the mask.

        ``mask_ratio`` defaults to the model's; 0 is accepted here (no patch removed).
        """
        self._check_input(images)
        ratio = check_mask_ratio(self.mask_ratio if mask_ratio is None else mask_ratio, self.num_patches,
                                 allow_unmasked=True)
        x, _ = self.patch_embed(images)
        x = x + self.pos_embed[:, 1:]
        masking = random_masking(x.shape[0], x.shape[1], ratio, device=x.device, generator=generator)
        x = gather_tokens(x, masking.ids_keep)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = self._blocks(self.blocks, torch.cat([cls, x], dim=1))
        return self.norm(x), masking

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoder tokens (N, 1 + K, C) -> per-patch predictions (N, L, p*p*C) in patch order."""
        x = self.decoder_embed(latent)
        batch, length = ids_restore.shape
        mask_tokens = self.mask_token.expand(batch, length + 1 - x.shape[1], -1)
        patches = gather_tokens(torch.cat([x[:, 1:], mask_tokens], dim=1), ids_restore)  # unshuffle
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        x = self.decoder_norm(self._blocks(self.decoder_blocks, x))
        return self.decoder_pred(x)[:, 1:]

    def forward_loss(self, images: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-patch MSE to the (optionally normalised) pixel patches, over removed patches only."""
        target = reconstruction_target(patchify(images, self.patch_size), self.norm_pix_loss)
        return masked_patch_loss(pred, target, mask)

    def forward(
        self, images: torch.Tensor, mask_ratio: float | None = None, generator: torch.Generator | None = None
    ) -> MAEOutput:
        """Mask, encode, decode and score a batch: ``(loss, pred, mask)`` as the official forward."""
        ratio = self.mask_ratio if mask_ratio is None else check_mask_ratio(mask_ratio, self.num_patches)
        latent, masking = self.forward_encoder(images, ratio, generator)
        pred = self.forward_decoder(latent, masking.ids_restore)
        return MAEOutput(self.forward_loss(images, pred, masking.mask), pred, masking.mask)

    def config(self) -> dict[str, Any]:
        """The keywords that rebuild this model (encoder options, decoder, mask ratio, norm-pix)."""
        return {
            **self.encoder_options,
            "decoder": asdict(self.decoder_config),
            "mask_ratio": self.mask_ratio,
            "norm_pix_loss": self.norm_pix_loss,
        }


def build_mae(
    arch: str,
    *,
    decoder: DecoderConfig | Mapping[str, Any] | None = None,
    mask_ratio: float = 0.75,
    norm_pix_loss: bool = False,
    **overrides: Any,
) -> MaskedAutoencoderViT:
    """An MAE for the named encoder arch (``mae_transfer.models.ARCHS``), any MAEViT keyword overridden.

    Example:
        >>> model = build_mae("vit_base_patch16", norm_pix_loss=True)  # official mae_vit_base_patch16
    """
    if arch not in ARCHS:
        raise ValueError(f"arch: unknown ViT arch {arch!r}; expected one of {sorted(ARCHS)}")
    encoder = {**ARCHS[arch].shape(), **overrides}
    return MaskedAutoencoderViT(decoder=decoder, mask_ratio=mask_ratio, norm_pix_loss=norm_pix_loss, **encoder)
