"""Pipeline stages for the neckline classifier; each module with a main() is one DVC stage."""
