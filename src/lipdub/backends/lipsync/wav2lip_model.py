"""The Wav2Lip generator (PyTorch) and a loader for its released checkpoints.

Architecture: Prajwal, Mukhopadhyay, Namboodiri, Jawahar, "A Lip Sync Expert Is All You Need for Speech
to Lip Generation In the Wild", ACM Multimedia 2020 (the generator of Rudrabha/Wav2Lip, whose
``wav2lip.pth`` and ``wav2lip_gan.pth`` share it). Written here from the paper's description and the
parameter layout of ``../shared/specs/wav2lip_state_dict.txt``: 352 state-dict entries, 36,298,035
learnable parameters. Module names (``face_encoder_blocks``, ``audio_encoder``,
``face_decoder_blocks``, ``output_block``, ``conv_block``) are the checkpoint's keys, so a released
checkpoint loads with ``strict=True``.

* face encoder: a U-Net encoder over 6 channels (the target face with its lower half masked, and a
  reference face, stacked on channels), 96x96 down to 1x1 with 512 channels;
* audio encoder: a 80x16 mel window (0.2 s of speech) down to a 512-d embedding;
* face decoder: transposed convolutions from the audio embedding back to 96x96, each block
  concatenated with the face encoder's feature map of the same size (skip connections);
* output: a 3x3 convolution, a 1x1 convolution to 3 channels and a sigmoid (values in [0, 1]).

Every convolution except the last is followed by batch normalisation and a ReLU; the residual ones
add their input before the ReLU.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...errors import InputError, MissingWeights
from ...models import state_dict_mismatch

FACE_SIZE_PX = 96  # the generator's face crop, pixels (square)
MEL_STEP_FRAMES = 16  # mel frames per video frame window (0.2 s at 80 mel frames per second)
N_MELS = 80


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm2d + ReLU, optionally residual (input added before the ReLU).

    State-dict keys: ``conv_block.0`` (the convolution), ``conv_block.1`` (the batch norm).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride, padding: int, residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class ConvTransposeBlock(nn.Module):
    """ConvTranspose2d + BatchNorm2d + ReLU (keys ``conv_block.0`` and ``conv_block.1``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int, output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(c: int) -> ConvBlock:
    return ConvBlock(c, c, 3, 1, 1, residual=True)


class Wav2Lip(nn.Module):
    """The Wav2Lip generator.

    ``forward(audio, face)``:

    * ``audio``: float ``(B, 1, 80, 16)`` normalised mel windows (see
      :mod:`lipdub.backends.lipsync.wav2lip_audio`), or ``(B, T, 1, 80, 16)``;
    * ``face``: float ``(B, 6, 96, 96)`` in [0, 1]: channels 0-2 the target face with rows 48-95
      set to 0, channels 3-5 the reference face, both in **BGR** order (the released checkpoints
      were trained on OpenCV images), or ``(B, 6, T, 96, 96)``;
    * returns float ``(B, 3, 96, 96)`` (or ``(B, 3, T, 96, 96)``) in [0, 1], BGR.
    """

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),  # 96
            nn.Sequential(ConvBlock(16, 32, 3, 2, 1), _res(32), _res(32)),  # 48
            nn.Sequential(ConvBlock(32, 64, 3, 2, 1), _res(64), _res(64), _res(64)),  # 24
            nn.Sequential(ConvBlock(64, 128, 3, 2, 1), _res(128), _res(128)),  # 12
            nn.Sequential(ConvBlock(128, 256, 3, 2, 1), _res(256), _res(256)),  # 6
            nn.Sequential(ConvBlock(256, 512, 3, 2, 1), _res(512)),  # 3
            nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = nn.Sequential(
            ConvBlock(1, 32, 3, 1, 1), _res(32), _res(32),  # 80x16
            ConvBlock(32, 64, 3, (3, 1), 1), _res(64), _res(64),  # 27x16
            ConvBlock(64, 128, 3, 3, 1), _res(128), _res(128),  # 9x6
            ConvBlock(128, 256, 3, (3, 2), 1), _res(256),  # 3x3
            ConvBlock(256, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0),  # 1x1
        )
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),  # 1
            nn.Sequential(ConvTransposeBlock(1024, 512, 3, 1, 0), _res(512)),  # 3
            nn.Sequential(ConvTransposeBlock(1024, 512, 3, 2, 1, 1), _res(512), _res(512)),  # 6
            nn.Sequential(ConvTransposeBlock(768, 384, 3, 2, 1, 1), _res(384), _res(384)),  # 12
            nn.Sequential(ConvTransposeBlock(512, 256, 3, 2, 1, 1), _res(256), _res(256)),  # 24
            nn.Sequential(ConvTransposeBlock(320, 128, 3, 2, 1, 1), _res(128), _res(128)),  # 48
            nn.Sequential(ConvTransposeBlock(160, 64, 3, 2, 1, 1), _res(64), _res(64)),  # 96
        ])
        self.output_block = nn.Sequential(ConvBlock(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        batch = audio.size(0)
        timed = face.dim() > 4
        if timed:  # (B, T, 1, 80, 16) and (B, 6, T, 96, 96) -> B*T independent windows
            audio = torch.cat([audio[:, i] for i in range(audio.size(1))], dim=0)
            face = torch.cat([face[:, :, i] for i in range(face.size(2))], dim=0)
        x = self.audio_encoder(audio)  # (B, 512, 1, 1)
        feats = []
        f = face
        for block in self.face_encoder_blocks:
            f = block(f)
            feats.append(f)
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, feats.pop()), dim=1)
        out = self.output_block(x)
        if timed:
            out = torch.stack(torch.split(out, batch, dim=0), dim=2)
        return out


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a Wav2Lip checkpoint file and return the generator's state dict with bare keys.

    Accepts the released layout (a dict with ``state_dict``, plus ``optimizer``, ``global_step``,
    ``global_epoch``, which are ignored; keys prefixed ``module.`` by ``nn.DataParallel``) and a
    bare state dict. Loaded with ``torch.load(weights_only=True)`` (no code runs from the file).

    Raises:
        MissingWeights: ``path`` does not exist.
        InputError: the file is not a readable PyTorch checkpoint or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeights(f"Wav2Lip checkpoint {path} not found",
                             "pass --checkpoint PATH to a wav2lip.pth / wav2lip_gan.pth (Rudrabha/Wav2Lip release)")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip or unpickler errors: not a checkpoint
        raise InputError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})",
                         "pass the wav2lip.pth / wav2lip_gan.pth file of the Wav2Lip release") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} holds no state dict of tensors",
                         "pass the generator checkpoint (wav2lip.pth / wav2lip_gan.pth), not a discriminator or SyncNet")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def build_model(path: Path) -> Wav2Lip:
    """A :class:`Wav2Lip` in eval mode with the weights of checkpoint ``path`` (on the CPU, float32).

    Every key and shape is checked before loading, so a wrong file fails with the first mismatch.

    Raises:
        MissingWeights: ``path`` does not exist.
        InputError: unreadable file, or a key missing, unexpected or of another shape than the
            generator's (the message names the first such key).
    """
    state = load_state_dict(path)
    model = Wav2Lip()
    mismatch = state_dict_mismatch(state, model.state_dict())
    if mismatch:
        raise InputError(f"{path} does not match the Wav2Lip generator: {mismatch}",
                         "pass a Wav2Lip generator checkpoint (wav2lip.pth / wav2lip_gan.pth)")
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_checkpoint(model: Wav2Lip, path: Path, *, data_parallel: bool = True, with_optimizer: bool = True) -> None:
    """Write ``model`` in the released checkpoint layout (for tests and conversions).

    The layout of Rudrabha/Wav2Lip's ``save_checkpoint``: ``{"state_dict", "optimizer",
    "global_step", "global_epoch"}``, keys prefixed ``module.`` when trained with DataParallel.
    """
    state = {(f"module.{k}" if data_parallel else k): v for k, v in model.state_dict().items()}
    optimizer = None
    if with_optimizer:
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        optimizer = opt.state_dict()
    torch.save({"state_dict": state, "optimizer": optimizer, "global_step": 0, "global_epoch": 0}, str(path))
