-- Undo V1.
DROP TABLE appointments;
DROP TABLE patients;
DROP TABLE providers;
DROP TABLE appointment_types;
