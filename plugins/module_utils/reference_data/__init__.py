# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference data (lookup tables) loaded idempotently from CSV, YAML or JSON files."""
