/*
 * Intentionally empty: see meson.build. It must not define any external
 * symbol, because the same archive is whole-linked several times.
 */
typedef int reenact_empty_translation_unit;
