pub mod mosquitto;
pub mod nats;
