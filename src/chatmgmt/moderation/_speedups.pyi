def normalize(
    text: str,
    fold: bytes | None,
    fold_astral: dict[int, int] | None,
    classes: bytes,
    astral: tuple[tuple[int, int, int], ...],
    options: int,
    /,
) -> str | tuple[str, bytes, bytes]: ...
